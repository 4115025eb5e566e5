"""Developer tools: demo, benchmarks."""
