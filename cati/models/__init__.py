"""ORM models, split by topic. Importing this package registers every table on ``Base.metadata``."""

from .agents import AgentEvent, AgentState, AgentStatus, LoginFailure
from .analysis import AnalysisJob, AnalysisRelease, JobStatus
from .base import Base, UTCDateTime, utcnow
from .calls import Appointment, AppointmentStatus, AttemptStatus, CallAttempt
from .cawi import Invitation, InvitationKind, QuestionTime, WebResponse
from .certification import (
    Audit,
    AuditMember,
    AuditPass,
    AuditStatus,
    EvidenceFile,
    Judgement,
    MemberKind,
    NonConformity,
    Verdict,
)
from .compliance import AuditLog, DoNotCall
from .interview import Answer, AnswerRevision, Interview, InterviewStatus, QCStatus
from .messaging import LoginSession, MessageReceipt, QCReview, SupervisorMessage
from .quota import CaseQuotaCell, QuotaCell
from .sample import Case, CasePhone, CaseStatus, PhoneStatus, Replicate
from .study import Enterprise, EnterpriseStatus, Industry, Study
from .users import Role, User

__all__ = [
    "AgentEvent", "AgentState", "AnalysisJob", "AnalysisRelease", "JobStatus", "AgentStatus", "LoginFailure",
    "Answer", "AnswerRevision", "Appointment", "AppointmentStatus", "AttemptStatus", "AuditLog", "Base",
    "CallAttempt", "Case", "CasePhone", "CaseQuotaCell", "CaseStatus", "DoNotCall", "Enterprise", "EnterpriseStatus", "Industry",
    "Interview", "InterviewStatus", "Invitation", "InvitationKind", "QuestionTime", "WebResponse", "PhoneStatus", "QCStatus", "QuotaCell", "Replicate", "Role", "Study", "User", "UTCDateTime",
    "utcnow", "Audit", "AuditMember", "AuditPass", "AuditStatus", "EvidenceFile", "Judgement", "MemberKind",
    "NonConformity", "Verdict",
    "LoginSession", "MessageReceipt", "QCReview", "SupervisorMessage",
]
