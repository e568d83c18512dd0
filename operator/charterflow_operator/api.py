"""The operator's vocabulary, in one typed place: the CharterFlow's group/version/kind, the label
and annotation keys it writes, the kinds of child it owns, condition types, reasons and phases.

Everything else imports these names; a string spelled here is spelled nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

GROUP: Final = "charterflow.app"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "CharterFlow"
PLURAL: Final = "charterflows"
# Server-side apply field manager, Event source and the managed-by label value.
FIELD_MANAGER: Final = "charterflow-operator"
MANAGED_BY: Final = FIELD_MANAGER
# Holds a Deployment's replicas for the moment autoscaling is turned on (reconcile.py): the value
# stays where it is until the HPA takes the field over, instead of dropping to the default 1.
HANDOFF_MANAGER: Final = f"{FIELD_MANAGER}-handoff"

# --- labels ------------------------------------------------------------------------------------
NAME_LABEL: Final = "app.kubernetes.io/name"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
VERSION_LABEL: Final = "app.kubernetes.io/version"
# Set by the Job controller on each pod it creates.
JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"

# --- annotations -------------------------------------------------------------------------------
# On pod templates: sha256 of the configuration and referenced Secrets (a change rolls the pods).
CHECKSUM_ANNOTATION: Final = f"{GROUP}/config-checksum"
# On a Job: the CharterFlow generation it was created for (a failed Job of an older one is retried).
GENERATION_ANNOTATION: Final = f"{GROUP}/generation"
# On a CharterFlow: each new value of it requests one backup run now.
BACKUP_NOW_ANNOTATION: Final = f"{GROUP}/backup-now"
# On a CharterFlow whose deletionPolicy is Snapshot: its deletion waits for the final backup.
FINAL_BACKUP_FINALIZER: Final = f"{GROUP}/final-backup"
# On the Ingress: ingress-nginx's request body limit.
BODY_SIZE_ANNOTATION: Final = "nginx.ingress.kubernetes.io/proxy-body-size"


# --- the kinds of child ------------------------------------------------------------------------
@dataclass(frozen=True)
class ChildKind:
    """A kind of object the operator owns: watched for drift, and granted in the chart's RBAC."""

    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        """The API group as RBAC names it ("" for core/v1)."""
        return self.api_version.rpartition("/")[0]


SERVICE_ACCOUNT: Final = ChildKind("v1", "ServiceAccount", "serviceaccounts")
CONFIG_MAP: Final = ChildKind("v1", "ConfigMap", "configmaps")
SERVICE: Final = ChildKind("v1", "Service", "services")
DEPLOYMENT: Final = ChildKind("apps/v1", "Deployment", "deployments")
HPA: Final = ChildKind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
PDB: Final = ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
INGRESS: Final = ChildKind("networking.k8s.io/v1", "Ingress", "ingresses")
NETWORK_POLICY: Final = ChildKind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
CRONJOB: Final = ChildKind("batch/v1", "CronJob", "cronjobs")
JOB: Final = ChildKind("batch/v1", "Job", "jobs")  # lifecycle Jobs, and the CronJob's backups

# Every kind of child the operator applies, the one list (handlers watch them; a test checks the
# chart's RBAC against it). Secrets (read, and the generated JWT one) and pods (read) are not
# children in this sense: nobody watches them for drift.
CHILD_KINDS: Final = (
    SERVICE_ACCOUNT,
    CONFIG_MAP,
    SERVICE,
    DEPLOYMENT,
    HPA,
    PDB,
    INGRESS,
    NETWORK_POLICY,
    CRONJOB,
    JOB,
)
# Children that the operator also deletes: optional ones turned off, Jobs retried or superseded,
# its ServiceAccount when the spec names an existing one.
DELETED_KINDS: Final = (SERVICE_ACCOUNT, HPA, INGRESS, CRONJOB, JOB, NETWORK_POLICY)
# The Prometheus Operator's kinds (spec.monitoring): applied only when the cluster serves them,
# and not watched (the backstop pass restores drift), so a cluster without them costs nothing.
POD_MONITOR: Final = ChildKind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors")
PROMETHEUS_RULE: Final = ChildKind("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules")
MONITORING_KINDS: Final = (POD_MONITOR, PROMETHEUS_RULE)
SECRET: Final = ChildKind("v1", "Secret", "secrets")
POD: Final = ChildKind("v1", "Pod", "pods")


# --- status ------------------------------------------------------------------------------------
class Phase:
    """``status.phase``."""

    READY: Final = "Ready"
    PROGRESSING: Final = "Progressing"
    PENDING: Final = "Pending"
    DEGRADED: Final = "Degraded"
    PAUSED: Final = "Paused"


class Condition:
    """``status.conditions[].type``."""

    READY: Final = "Ready"
    API_AVAILABLE: Final = "ApiAvailable"
    WORKER_AVAILABLE: Final = "WorkerAvailable"
    MIGRATIONS_COMPLETE: Final = "MigrationsComplete"
    BACKUP_SCHEDULED: Final = "BackupScheduled"
    RESTORED: Final = "Restored"


class Reason:
    """Condition reasons (and the reasons of the Events posted when Ready's changes)."""

    # Ready
    ALL_COMPONENTS_READY: Final = "AllComponentsReady"
    ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
    PENDING: Final = "Pending"
    PAUSED: Final = "Paused"
    MISSING_SECRET: Final = "MissingSecret"  # noqa: S105 - a reason
    APPLY_FAILED: Final = "ApplyFailed"
    # A child's name is taken by an object this CharterFlow does not control (never adopted).
    NAME_CONFLICT: Final = "NameConflict"
    PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
    RESTORE_FAILED: Final = "RestoreFailed"
    MIGRATION_FAILED: Final = "MigrationFailed"
    RESTORING: Final = "Restoring"
    MIGRATING: Final = "Migrating"
    # ApiAvailable, WorkerAvailable, BackupScheduled
    NOT_CREATED: Final = "NotCreated"
    MINIMUM_REPLICAS_AVAILABLE: Final = "MinimumReplicasAvailable"
    REPLICAS_UNAVAILABLE: Final = "ReplicasUnavailable"
    DISABLED: Final = "Disabled"
    SUSPENDED: Final = "Suspended"
    SCHEDULED: Final = "Scheduled"
    # MigrationsComplete, Restored: a Job's own reason (BackoffLimitExceeded, ...) or one of these
    NOT_CHECKED: Final = "NotChecked"
    SUCCEEDED: Final = "Succeeded"
    RUNNING: Final = "Running"
    FAILED: Final = "Failed"
    RETRYING: Final = "Retrying"
    RESTORED: Final = "Restored"
    # The Warning Event when spec.monitoring cannot be honoured (no Prometheus Operator CRDs)
    MONITORING_UNAVAILABLE: Final = "MonitoringUnavailable"
    NOT_APPLICABLE: Final = "NotApplicable"
    WAITING_FOR_RESTORE: Final = "WaitingForRestore"
    WAITING_FOR_ROLLOUT: Final = "WaitingForRollout"
    # Ready and MigrationsComplete/Restored: a lifecycle Job could not reach a dependency (it is
    # retried by itself, DEPENDENCY_RETRY_SECONDS after it failed)
    DATABASE_UNAVAILABLE: Final = "DatabaseUnavailable"
    REDIS_UNAVAILABLE: Final = "RedisUnavailable"
    STORAGE_UNAVAILABLE: Final = "StorageUnavailable"
    # Ready while a Snapshot deletion waits (and the Events of that wait)
    FINAL_BACKUP_RUNNING: Final = "FinalBackupRunning"
    FINAL_BACKUP_FAILED: Final = "FinalBackupFailed"
    FINAL_BACKUP_SUCCEEDED: Final = "FinalBackupSucceeded"


# Ready reasons that make the phase Degraded (someone has to act).
DEGRADED_REASONS: Final = frozenset(
    {
        Reason.MISSING_SECRET,
        Reason.APPLY_FAILED,
        Reason.NAME_CONFLICT,
        Reason.PROGRESS_DEADLINE_EXCEEDED,
        Reason.RESTORE_FAILED,
        Reason.MIGRATION_FAILED,
        Reason.FINAL_BACKUP_FAILED,
        Reason.DATABASE_UNAVAILABLE,
        Reason.REDIS_UNAVAILABLE,
        Reason.STORAGE_UNAVAILABLE,
    }
)
# The dependency a lifecycle command names (charterflow.contract.DEPENDENCY_UNAVAILABLE) -> reason.
UNAVAILABLE_REASONS: Final = {
    "database": Reason.DATABASE_UNAVAILABLE,
    "redis": Reason.REDIS_UNAVAILABLE,
    "storage": Reason.STORAGE_UNAVAILABLE,
}
