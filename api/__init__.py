"""batterytrace.api"""
