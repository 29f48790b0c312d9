"""The equivariant network: radial basis, NequIP-style backbone, tensor heads."""
