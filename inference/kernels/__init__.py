"""Numba CUDA kernels, one module per step of the NumPy reference, with the
same function names, working on device arrays:

    embedding.embedding   layernorm.layer_norm   matmul.linear   gelu.gelu
    softmax.softmax       attention.attention    sampling.sample

Each module's header lists its kernel versions (v1 is the reference loop
with the outer loop replaced by a thread index; later versions are one
explained step faster), and tests/kernels checks every version against the
reference. They run on a GPU, or anywhere under Numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1), which runs every thread in Python.

The launchers the batched step uses take a `stream`: where the launch goes,
0 (the default stream) unless the backend is recording the step as a CUDA
graph (backends/cuda_backend.py, StepGraphs).
"""
