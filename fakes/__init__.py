"""Provider fakes: a pure behaviour model and the HTTP servers that wrap it."""
