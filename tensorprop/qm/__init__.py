"""Reference quantum-chemistry data generated with PySCF (optional extra ``tensorprop[qm]``)."""
