"""Datasets for accuracy evaluation: formats (:mod:`.formats`), decoding (:mod:`.decode`), temporal
sampling (:mod:`.sampling`), spatial transforms (:mod:`.transforms`), named test protocols
(:mod:`.protocols`), the per-video view loader (:mod:`.loader`) and synthetic datasets (:mod:`.synth`)."""
