"""Speed: the roofline, continuous-batching serving, training step time, calibration and error bands."""
