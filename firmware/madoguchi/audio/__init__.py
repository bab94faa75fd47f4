"""Audio sources: live capture and recordings behind one interface (see ``source.AudioSource``)."""
