"""batterytrace.verifier"""
