"""Reports and data exports: DataFrames in (from ``scoring`` and the database bridge), files out.

- :mod:`reports.industry` — ``build_industry_report(result, study, *, rates, lang, out_dir, formats)``
- :mod:`reports.enterprise` — ``build_enterprise_reports(result, study, *, enterprise_ids, previous, verbatims,
  lang, out_dir, formats, workers, progress)``
- :mod:`reports.fieldwork` — ``build_fieldwork_report(cases, attempts, rates, quotas, *, tz, lang, out_dir, formats)``
- :mod:`reports.exports` — ``export_responses`` (CSV with BOM, XLSX, SPSS .sav), ``export_paradata``
- :mod:`reports.loading` — ``load_score_result(folder, spec)`` (a ``cati score --out`` folder)

HTML is one self-contained file (charts as base64 PNG), PDF comes from that HTML through WeasyPrint, XLSX through
openpyxl; charts use the CJK font found by :mod:`reports.fonts` (Debian ``fonts-noto-cjk``). This package imports
``scoring`` and never the database or ``cati``.
"""
