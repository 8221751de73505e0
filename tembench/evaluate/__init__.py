"""Accuracy evaluation: the runner (:mod:`.runner`), view fusion (:mod:`.fusion`), metrics
(:mod:`.metrics`), checkpoint loading (:mod:`.checkpoint`), torchrun sharding (:mod:`.distributed`) and
the dataset fingerprint (:mod:`.fingerprint`)."""
