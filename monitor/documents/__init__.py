"""Documents: what people file and keep, built from stored calls and findings.

    facts.py, clauses.py, formatting.py   what both documents read: the call, its findings
                                          and incidents, the clauses cited for them
    complaint.py   the debtor's complaint letter (投诉书): remedies, addressee, channels
    incident.py    the lender's compliance incident report
    model.py, layout.py   the document model and each document laid out in it
    render/        HTML, PDF (WeasyPrint) and DOCX (python-docx) from that model
    reports.py     the facade the CLI and the web app call
    evidence.py    evidence packages with a signed SHA-256 manifest (signing.py: Ed25519)
"""
