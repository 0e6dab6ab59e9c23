"""qgtools: the toolbox behind the qg-hpo workbook series.

Hyperparameter optimisation of a quark/gluon jet tagger on EnergyFlow's N-subjettiness
benchmark. Import the modules you need (`from qgtools import data, metrics`); nothing
runs on import.
"""

__version__ = "0.1.0"
