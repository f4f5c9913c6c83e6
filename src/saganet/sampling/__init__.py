"""saganet.sampling"""
