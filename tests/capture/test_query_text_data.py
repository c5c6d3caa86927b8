"""A lipid panel whose values raise no query: tests change one value to raise one."""

LIPGLU_VALUES = {"CHOL": "4.5", "HDL": "1.2", "LDL": "2", "VLDL": "0.5", "TRIG": "1", "GLUC": "5"}
