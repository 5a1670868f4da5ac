"""Documents: what people file and keep, built from stored calls and findings.

    reports.py   the complaint letter and incident report (templates → HTML/PDF/DOCX)
    evidence.py  evidence packages with a verified SHA-256 manifest
"""
