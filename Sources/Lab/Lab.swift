// Lab: deployment, workloads and benchmarks.
