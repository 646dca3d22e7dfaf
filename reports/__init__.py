"""Reports: pure functions over traces (metrics, score, gate, evidence, plots)."""
