"""Labels for reports, zh-CN first and en on request.

Everything a reader sees that does not come from the study file (indicator and item names come from the scoring
spec) is looked up here, so a translation is one edit in one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LANGS", "t", "check_lang", "indicator_names", "item_names", "tier_label", "quadrant_label",
           "disposition_label", "industry_label", "correction_label"]

LANGS = ("zh-CN", "en")

_T: dict[str, tuple[str, str]] = {
    # titles
    "industry_report": ("客户联络中心客户满意度行业报告", "Contact centre customer satisfaction: industry report"),
    "enterprise_report": ("客户联络中心客户满意度企业报告", "Contact centre customer satisfaction: enterprise report"),
    "fieldwork_report": ("电话调查执行报告", "Fieldwork report"),
    "generated": ("生成时间", "Generated"),
    "contents": ("目录", "Contents"),
    # sections
    "sec_overall": ("总体情况", "Overall results"),
    "sec_industries": ("行业排名", "Industry ranking"),
    "sec_profiles": ("指标剖面", "Indicator profiles"),
    "sec_drivers": ("驱动因素分析", "Driver analysis"),
    "sec_enterprises": ("各行业企业得分", "Enterprise scores by industry"),
    "sec_callback": ("客户回访率", "Customer callback rate"),
    "sec_method": ("方法说明", "Method"),
    "sec_scores": ("一级指标得分", "First-level indicator scores"),
    "sec_items": ("二级指标得分", "Second-level indicator scores"),
    "sec_strengths": ("优势与短板", "Strengths and weaknesses"),
    "sec_priorities": ("优先改进领域", "Priority improvement areas"),
    "sec_verbatims": ("客户原话：最需要改进的方面", "In customers' words: what to improve"),
    "sec_dispositions": ("AAPOR 最终处理结果", "AAPOR final dispositions"),
    "sec_rates": ("应答率（AAPOR 标准定义）", "Outcome rates (AAPOR Standard Definitions)"),
    "sec_rates_by_group": ("分组应答率（AAPOR）", "Outcome rates by group (AAPOR)"),
    "sec_quota": ("配额完成情况", "Quota completion"),
    "sec_interviewers": ("访员工作效率", "Interviewer productivity"),
    "sec_hours": ("按时段与结果统计的拨打", "Calls by hour of day and outcome"),
    # columns
    "indicator": ("指标", "Indicator"),
    "code": ("代码", "Code"),
    "item": ("二级指标", "Item"),
    "score": ("得分", "Score"),
    "composite": ("综合得分", "Composite"),
    "overall_composite": ("总体情况", "Composite"),
    "ci": ("95%区间", "95% interval"),
    "ci_low": ("区间下限", "Interval low"),
    "ci_high": ("区间上限", "Interval high"),
    "industry": ("行业", "Industry"),
    "province": ("省份", "Province"),
    "enterprise": ("企业", "Enterprise"),
    "enterprise_id": ("企业编号", "Enterprise ID"),
    "n": ("样本量", "n"),
    "n_base": ("有效基数", "Base"),
    "n_enterprises": ("企业数", "Enterprises"),
    "n_respondents": ("受访者数", "Respondents"),
    "rank": ("排名", "Rank"),
    "rank_interval": ("排名区间", "Rank interval"),
    "rank_in_industry": ("行业内排名", "Rank in industry"),
    "rank_overall": ("总排名", "Overall rank"),
    "tier": ("分层", "Tier"),
    "tier_counts": ("企业分层（高于/无差异/低于行业均值）", "Enterprise tiers (above / not different / below)"),
    "callback_rate": ("客户回访率", "Callback rate"),
    "callback_n": ("回访有效基数", "Callback base"),
    "this_enterprise": ("本企业", "This enterprise"),
    "last_wave": ("本企业去年", "Last wave"),
    "this_province": ("本省份", "Province"),
    "this_industry": ("本行业", "Industry"),
    "all_enterprises": ("全行业", "All enterprises"),
    "vs_industry": ("较本行业", "vs industry"),
    "significance": ("显著性", "Sig."),
    "sig_above": ("▲ 高于本行业", "▲ above industry"),
    "sig_below": ("▼ 低于本行业", "▼ below industry"),
    "sig_none": ("与本行业无显著差异", "not different from industry"),
    "strongest": ("相对优势项（高于本行业最多）", "Strongest items (furthest above the industry)"),
    "weakest": ("相对短板项（低于本行业最多）", "Weakest items (furthest below the industry)"),
    "none_above": ("没有高于本行业均值的二级指标。", "No item is above the industry mean."),
    "none_below": ("没有低于本行业均值的二级指标。", "No item is below the industry mean."),
    "importance": ("重要性（相对权重）", "Importance (relative weight)"),
    "volatility": ("波动性（企业间真实差异 τ）", "Volatility (between-enterprise spread τ)"),
    "correlation": ("相关系数", "Correlation"),
    "relative_weight": ("相对权重", "Relative weight"),
    "tau": ("τ", "τ"),
    "quadrant": ("象限", "Quadrant"),
    "quadrant_prob": ("该象限的自助法概率", "Bootstrap probability of this quadrant"),
    "level": ("层级", "Level"),
    "level_1": ("一级指标", "First level"),
    "level_2": ("二级指标", "Second level"),
    "priority_gap": ("低于本行业", "Below industry by"),
    "no_priorities": ("本企业在高重要性指标上均不低于本行业均值，暂无需优先改进的领域。",
                      "The enterprise is not below its industry on any high-importance indicator; no priority area."),
    "no_verbatims": ("本企业没有开放题回答。", "No answers to the open question for this enterprise."),
    "not_available": ("无", "n/a"),
    "value": ("数值", "Value"),
    "count": ("数量", "Count"),
    "share": ("占比", "Share"),
    "target": ("目标", "Target"),
    "completes": ("成功样本", "Completes"),
    "in_progress": ("进行中", "In progress"),
    "completion": ("完成率", "Completion"),
    "enterprises_full": ("已完成配额的企业", "Enterprises with quota met"),
    "interviewer": ("访员", "Interviewer"),
    "calls": ("拨打次数", "Calls"),
    "answered": ("接通次数", "Answered"),
    "talk_hours": ("通话时长（小时）", "Talk time (hours)"),
    "calls_per_complete": ("每成功样本拨打次数", "Calls per complete"),
    "completes_per_hour": ("每通话小时成功样本", "Completes per talk hour"),
    "mean_call_min": ("平均通话时长（分钟）", "Mean call length (min)"),
    "hour": ("时段（当地时间）", "Hour (local time)"),
    "outcome": ("结果", "Outcome"),
    "disposition": ("处理结果代码", "Disposition code"),
    "disposition_label": ("说明", "Description"),
    "symbol": ("AAPOR 类别", "AAPOR group"),
    "rate": ("比率", "Rate"),
    "definition": ("定义", "Definition"),
    "sheet_overall": ("总体", "Overall"),
    "sheet_industries": ("行业排名", "Industries"),
    "sheet_enterprises": ("企业得分", "Enterprises"),
    "sheet_drivers": ("驱动因素", "Drivers"),
    "sheet_method": ("方法", "Method"),
    "sheet_rates": ("应答率", "Rates"),
    "sheet_scores": ("一级指标", "Indicators"),
    "sheet_items": ("二级指标", "Items"),
    "sheet_verbatims": ("开放题", "Verbatims"),
    "sheet_dispositions": ("处理结果", "Dispositions"),
    "sheet_quota": ("配额", "Quota"),
    "sheet_interviewers": ("访员", "Interviewers"),
    "sheet_hours": ("拨打时段", "Calls by hour"),
    "chart_overall": ("总体及一级指标得分（95%区间）", "Composite and first-level scores (95% intervals)"),
    "chart_industries": ("行业综合得分与95%区间", "Industry composite scores with 95% intervals"),
    "chart_heatmap": ("各行业一级指标得分", "First-level scores by industry"),
    "chart_quadrant_1": ("驱动因素象限图：一级指标", "Driver quadrants: first-level indicators"),
    "chart_quadrant_2": ("驱动因素象限图：二级指标", "Driver quadrants: second-level indicators"),
    "chart_profile": ("一级指标对比", "First-level profile"),
    "chart_items": ("二级指标对比", "Second-level profile"),
    "chart_hours": ("按时段的拨打结果", "Call outcomes by hour"),
    "chart_quota": ("各企业成功样本数分布", "Completes per enterprise"),
    "chart_dispositions": ("最终处理结果分布", "Final dispositions"),
    "diff_overall": ("与全行业均值之差", "Difference from the all-enterprise mean"),
    "score_axis": ("得分", "Score"),
    "overall_line": ("全体企业均值", "Mean of all enterprises"),
    "enterprises_axis": ("企业数", "Enterprises"),
    "calls_axis": ("拨打次数", "Calls"),
    "other_outcomes": ("其他", "Other"),
    "top_n_note": ("共 {n} 家企业", "{n} enterprises"),
}

_TIERS = {
    "above": ("显著高于行业均值", "Significantly above industry mean"),
    "not_different": ("与行业均值无显著差异", "Not different from industry mean"),
    "below": ("显著低于行业均值", "Significantly below industry mean"),
}

_QUADRANTS = {
    "重点关注领域": "Focus area (important, varies)",
    "必备条件": "Must-have (important, uniform)",
    "卓越企业需关注": "Differentiator (less important, varies)",
    "行业基本达标": "Baseline met (less important, uniform)",
}

# AAPOR telephone dispositions (docs/domain.md §5), short descriptions.
_DISPOSITIONS: dict[str, tuple[str, str, str]] = {
    "1.1": ("I", "完成访问", "Complete"),
    "1.2": ("P", "部分完成", "Partial"),
    "2.10": ("R", "拒访", "Refusal"),
    "2.11": ("R", "拒访", "Refusal"),
    "2.111": ("R", "拒访（住户）", "Household-level refusal"),
    "2.112": ("R", "拒访（受访者）", "Known-respondent refusal"),
    "2.12": ("R", "中途终止", "Break-off"),
    "2.20": ("NC", "未接触", "Non-contact"),
    "2.21": ("NC", "受访者始终不在", "Respondent never available"),
    "2.22": ("NC", "答录机", "Answering machine"),
    "2.221": ("NC", "答录机（未留言）", "Answering machine, no message left"),
    "2.222": ("NC", "答录机（已留言）", "Answering machine, message left"),
    "2.29": ("NC", "已达最大拨打次数（本人始终不便）", "Max attempts reached, eligible respondent never available"),
    "2.30": ("O", "其他", "Other"),
    "2.31": ("O", "受访者去世", "Dead"),
    "2.32": ("O", "身体或精神原因无法访问", "Physically or mentally unable"),
    "2.33": ("O", "语言障碍", "Language barrier"),
    "2.90": ("O", "其他合格未访", "Other eligible, not interviewed"),
    "3.10": ("UH", "未知是否有合格住户", "Unknown if household"),
    "3.11": ("UH", "未拨打", "Not attempted"),
    "3.12": ("UH", "始终占线", "Always busy"),
    "3.13": ("UH", "始终无人接听", "No answer"),
    "3.14": ("UH", "答录机（未知住户）", "Answering machine, unknown household"),
    "3.15": ("UH", "来电拦截", "Call blocking"),
    "3.16": ("UH", "技术故障", "Technical phone problems"),
    "3.20": ("UO", "未知是否合格", "Unknown if eligible"),
    "3.90": ("UO", "其他未知", "Other unknown"),
    "3.91": ("UO", "已达最大拨打次数（合格性未知）", "Max attempts reached, eligibility unknown"),
    "4.10": ("NE", "样本框外", "Out of sample"),
    "4.20": ("NE", "传真/数据线路", "Fax/data line"),
    "4.30": ("NE", "空号/停机", "Non-working/disconnected"),
    "4.31": ("NE", "空号", "Non-working number"),
    "4.32": ("NE", "停机", "Disconnected number"),
    "4.51": ("NE", "企业电话", "Business number"),
    "4.70": ("NE", "无合格受访者", "No eligible respondent"),
    "4.80": ("NE", "配额已满", "Quota filled"),
}


_INDUSTRIES = {
    "通信": "Telecoms", "银行": "Banking", "公共服务": "Public services", "互联网": "Internet",
    "互联网金融": "Internet finance", "零售": "Retail", "互联网旅游": "Online travel", "基金": "Funds",
    "汽车": "Automotive", "保险": "Insurance", "制造业": "Manufacturing", "物流快递": "Logistics & express",
    "地产": "Real estate", "证券": "Securities", "其他": "Other",
}


def industry_label(industry: Any, lang: str = "zh-CN") -> str:
    """Industry tag as stored (zh-CN) or its English name for the 15 reference tags; others pass through."""
    s = "" if industry is None or industry != industry else str(industry)
    return s if lang == "zh-CN" else _INDUSTRIES.get(s, s)


_CORRECTIONS = {
    "fdr_bh": ("Benjamini–Hochberg 法（错误发现率 5%，全部企业一起检验）",
               "Benjamini–Hochberg (false discovery rate 5 %, all enterprises tested together)"),
    "holm": ("Holm 法（族错误率 5%）", "Holm (family-wise error rate 5 %)"),
    "bonferroni": ("Bonferroni 法（族错误率 5%）", "Bonferroni (family-wise error rate 5 %)"),
    "none": ("未校正", "none"),
}


def correction_label(method: Mapping[str, Any], lang: str = "zh-CN") -> str:
    """Name of the multiple-comparison correction scoring used, from its method dict."""
    code = str(method.get("tier_correction_method") or method.get("tier_correction") or "")
    if code in _CORRECTIONS:
        return _CORRECTIONS[code][0 if lang == "zh-CN" else 1]
    return str(method.get("multiple_comparison_correction") or code or "—")


def check_lang(lang: str) -> str:
    """Return ``lang`` if supported, else raise ``ValueError`` naming the choices."""
    if lang not in LANGS:
        raise ValueError(f"lang: {lang!r} is not supported; use one of {', '.join(LANGS)}")
    return lang


def t(key: str, lang: str = "zh-CN", **fmt: Any) -> str:
    """Label ``key`` in ``lang``; keyword arguments fill ``{placeholders}``."""
    pair = _T[key]
    text = pair[0] if lang == "zh-CN" else pair[1]
    return text.format(**fmt) if fmt else text


def tier_label(tier: Any, lang: str = "zh-CN") -> str:
    pair = _TIERS.get(str(tier))
    if pair is None:
        return "" if tier is None or tier != tier else str(tier)
    return pair[0] if lang == "zh-CN" else pair[1]


def quadrant_label(quadrant: Any, lang: str = "zh-CN") -> str:
    q = "" if quadrant is None or quadrant != quadrant else str(quadrant)
    if lang == "zh-CN" or q not in _QUADRANTS:
        return q
    return _QUADRANTS[q]


def quadrant_names() -> tuple[str, ...]:
    """The four quadrant names in the order scoring uses them."""
    return tuple(_QUADRANTS)


def disposition_label(code: Any, lang: str = "zh-CN") -> tuple[str, str]:
    """(AAPOR symbol, description) of a disposition code; unknown codes come back as ('', code)."""
    key = str(code).strip()
    entry = _DISPOSITIONS.get(key)
    if entry is None and "." in key:
        head, tail = key.split(".", 1)
        entry = _DISPOSITIONS.get(f"{head}.{tail[:2]}") or _DISPOSITIONS.get(f"{head}.{tail[:1]}0")
    if entry is None:
        return "", key
    return entry[0], entry[1] if lang == "zh-CN" else entry[2]


def indicator_names(spec: Any, lang: str = "zh-CN") -> dict[str, str]:
    """First-level indicator code → name from the scoring spec."""
    names: Mapping[str, str] = spec.indicator_names_zh if lang == "zh-CN" else spec.indicator_names_en
    return dict(names)


def item_names(spec: Any, lang: str = "zh-CN") -> dict[str, str]:
    """Item code → short neutral label from the scoring spec (A1 … F4, plus Q0 / CB1 when present)."""
    names: Mapping[str, str] = spec.item_names_zh if lang == "zh-CN" else spec.item_names_en
    return dict(names)
