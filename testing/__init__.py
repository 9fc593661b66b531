"""What tests, benchmarks and scripts share: factories, assertions, servers."""
