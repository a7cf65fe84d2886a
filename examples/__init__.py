"""Worked examples of dint's extension points, importable from a fresh clone (the project folder is searched when a
profile loads): `examples.kto`, a post-training method of one's own (`dint.interventions.custom`)."""
