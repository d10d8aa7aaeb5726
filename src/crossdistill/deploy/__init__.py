"""Deployment: exported graphs, prediction on scans, and the cost benchmark."""
