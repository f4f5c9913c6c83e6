"""Reading and writing media: video (PyAV), masks, audio (soundfile), muxing; all writes atomic."""
