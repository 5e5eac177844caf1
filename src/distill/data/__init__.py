"""Data: recordings cut into chunks, analysed once and cached on disk, served as datasets."""
