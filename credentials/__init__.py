"""batterytrace.credentials"""
