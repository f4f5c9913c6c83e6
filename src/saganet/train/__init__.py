"""saganet.train"""
