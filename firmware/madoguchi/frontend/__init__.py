"""The streaming front end: frames in, utterances with a side out (see ``pipeline.Frontend``)."""
