"""The envelope pipeline: job → flops → performance/memory → candidates → model → solve."""
