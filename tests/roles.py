"""The role fixtures every page and endpoint is tried as, and which of site 1 and site 2 each may see."""

ROLES = ["coordinator1", "investigator1", "coordinator2", "monitor", "datamanager", "sponsor", "outsider"]
SEES = {
    "coordinator1": {1},
    "investigator1": {1},
    "coordinator2": {2},
    "monitor": {1, 2},
    "datamanager": {1, 2},
    "sponsor": {1, 2},
    "outsider": set(),
}
