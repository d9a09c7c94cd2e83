from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="inference",
    version="0.1.0",
    description="An educational GPT-2-style inference server: NumPy reference, Numba CUDA kernels, BPE, Bottle.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10,<3.14",
    # The shipped model goes into the package as inference/data/claude-rust-small (from data/ here), so that
    # an installed server finds it wherever it runs (server.py's DEFAULT_MODEL).
    packages=find_packages(include=["inference", "inference.*"]) + ["inference.data"],
    package_dir={"inference.data": "data"},
    package_data={"inference": ["openapi.json", "playground.html"], "inference.data": ["claude-rust-small/*"]},
    install_requires=[
        # numba-cuda 0.30.4 registers np.row_stack, which NumPy 2.5 removed: with 2.5 no kernel compiles.
        "numpy>=1.24,<2.5",
        "numba>=0.59",
        "numba-cuda>=0.20",
        "regex>=2023.0",
        "bottle>=0.12.25",
        "cheroot>=11.0,<12",  # inference/http.py extends its connection manager
        "safetensors>=0.4",
        "prometheus_client>=0.17",  # GET /metrics (inference/metrics.py)
    ],
    extras_require={
        # Everything the test suite imports; torch/transformers tests skip without them.
        # schemathesis fuzzes from the OpenAPI description (3.2, for the event stream's itemSchema);
        # playwright drives Debian's Chromium (apt-get install chromium) in the browser tests;
        # the official openai client checks the /v1 routes.
        "test": ["pytest>=8", "pytest-cov>=5", "tiktoken>=0.7", "hypothesis>=6.100", "schemathesis>=4.20",
                 "playwright>=1.40", "openai>=1.40"],
        # scripts/train_model.py and the PyTorch comparison benchmarks.
        "train": ["torch>=2.2", "matplotlib>=3.7"],
        # The CUDA 13 toolkit pieces numba-cuda needs: NVVM for compiling (also the
        # GPU-less compile-only PTX check) and the runtime for running on a GPU.
        "cuda": ["numba-cuda[cu13]>=0.20"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "License :: OSI Approved :: MIT License",
    ],
)
