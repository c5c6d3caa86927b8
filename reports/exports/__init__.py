"""The trial's data taken out of the system: CDISC ODM 1.3.2 (odm.py) and CSV datasets (csv_export.py), both
written as streams from the protocol's definitions (metadata.py) and the reads of reports/selectors.py."""
