"""WattWise: energy- and carbon-aware scaling and placement of confidential inference replicas."""

__version__ = "0.1.0"
