"""Settings, read from the environment (prefix RECMATCH_) and an optional .env file."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The newest 9.x whose integ-test distribution Maven Central serves and that starts here.
ES_VERSION = "9.5.4"


def _default_cache_dir() -> Path:
    # Elasticsearch runs as a non-root user, who cannot enter /root: as root, cache under /var/cache.
    if os.geteuid() == 0:
        return Path("/var/cache/recmatch")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "recmatch"


class Settings(BaseSettings):
    """Every knob of recmatch, one typed field each."""

    model_config = SettingsConfigDict(env_prefix="RECMATCH_", env_file=".env", extra="ignore")

    # Elasticsearch connection: a local node by default, any cluster by URL; several nodes comma-separated
    # ("http://10.0.0.1:9200,http://10.0.0.2:9200"): the client spreads requests over them and fails over.
    es_url: str = "http://127.0.0.1:9200"
    es_api_key: SecretStr | None = None
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_ca_certs: Path | None = None
    es_verify_certs: bool = True
    es_request_timeout: float = Field(default=30.0, gt=0, le=600)
    es_max_retries: int = Field(default=3, ge=0, le=10)
    es_retry_backoff_base: float = Field(default=0.5, ge=0, le=30)
    es_retry_backoff_cap: float = Field(default=8.0, ge=0, le=120)

    # Index names and layout.
    index_prefix: str = Field(default="recmatch", pattern=r"^[a-z0-9][a-z0-9_\-]{0,40}$")
    candidates_shards: int = Field(default=1, ge=1, le=64)
    candidates_replicas: int = Field(default=0, ge=0, le=5,
                                     description="replicas of the candidates index; 1 or more on a multi-node cluster")

    # Reindex.
    reindex_keep: int = Field(default=2, ge=0, le=20, description="previous indices kept for --rollback")
    reindex_reject_threshold: float = Field(default=0.01, ge=0, le=1)
    reindex_chunk_docs: int = Field(default=2000, ge=1, le=50_000)
    reindex_chunk_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024, le=100 * 1024 * 1024)
    reindex_threads: int = Field(default=2, ge=1, le=16)
    reindex_shard_wait_s: float = Field(
        default=60.0, gt=0, le=600,
        description="how long a bulk write waits for an unavailable shard (a node lost) before the reindex fails")

    # Taxonomy: the shipped one unless an imported O*NET taxonomy is named.
    taxonomy_path: Path | None = None

    # The local node (`recmatch es up`).
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    local_es_version: str = Field(default=ES_VERSION, pattern=r"^9\.\d+\.\d+$")
    local_es_port: int = Field(default=9200, ge=1024, le=65535, description="HTTP port of the first local node")
    local_es_transport_port: int | None = Field(
        default=None, ge=1024, le=65535,
        description="transport port of the first node of a multi-node local cluster; unset: the HTTP port + 100")
    local_es_nodes: int = Field(default=1, ge=1, le=9, description="nodes of the local cluster (`es up --nodes`)")
    local_es_heap: str = Field(default="1g", pattern=r"^\d+[mg]$", description="heap of a single local node")
    local_es_cluster_heap: str = Field(
        default="768m", pattern=r"^\d+[mg]$",
        description="heap of each node of a multi-node local cluster (3 x 768m fit a 2-core, 24 GB machine)")
    local_es_user: str = "recmatch-es"
    java_home: Path | None = Field(default=None, description="a JDK >= 21 for the local node; else searched")

    # Delivery of outbox entries to the CRM and messaging webhooks (recmatch.webhooks.delivery).
    delivery_max_attempts: int = Field(default=8, ge=1, le=50, description="tries before an entry is dead")
    delivery_backoff_base: float = Field(default=60.0, gt=0, le=3600,
                                         description="seconds before the 2nd try; doubles each try, plus jitter")
    delivery_backoff_cap: float = Field(default=3600.0, gt=0, le=86_400, description="longest wait between tries")
    delivery_timeout: float = Field(default=10.0, gt=0, le=120, description="seconds a receiver has to answer")
    delivery_poll_interval: float = Field(default=1.0, gt=0, le=300, description="seconds between worker rounds")
    delivery_in_api: bool = Field(default=True, description="the API runs a delivery worker in the background")

    # Actions, tokens and links.
    secret_key: SecretStr | None = Field(
        default=None, description="signs widget and share tokens; unset: one random secret kept in the cluster")
    public_base_url: str = Field(default="http://127.0.0.1:8000", description="where candidates open share links")
    auth_cache_seconds: float = Field(
        default=30.0, ge=0, le=3600,
        description="how long a process trusts an API key it checked; revocations and tenant changes take effect "
                    "within it (0: check every call)")
    widget_token_ttl_s: int = Field(default=900, ge=60, le=900, description="widget tokens live at most 15 min")
    share_link_ttl_days: int = Field(default=30, ge=1, le=365)
    export_monthly_limit: int = Field(default=300, ge=0, le=100_000, description="exports per seat per month")
    inmail_monthly_allowance: int = Field(default=150, ge=0, le=100_000, description="InMails per seat per month")
    # Trust boundaries (docs/robustness.md, "Trust").
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
                                description="largest request body accepted, checked before it is parsed (413)")
    webhook_allow_http: bool = Field(
        default=False, description="development only: accept http:// webhook URLs (https is required otherwise)")
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs webhooks may reach although they are loopback, private or link-local (e.g. a receiver "
                    "on the operator's own network); empty: none")
    secrets_key: SecretStr | None = Field(
        default=None, description="encrypts webhook and signing secrets in the accounts index (a Fernet key, or "
                                  "several comma-separated, newest first, to rotate); unset: stored in plain text")
    personal_data_retention_days: int = Field(
        default=90, ge=1, le=3650,
        description="days after which delivered or dead outbox entries lose their payload and events are deleted")
    auth_failed_lookups_per_second: float = Field(
        default=20.0, gt=0, le=10_000,
        description="unknown API keys one process looks up in Elasticsearch per second; beyond it, 429")
    action_sweep_after_seconds: float = Field(
        default=30.0, ge=0, le=3600, description="an action still half-applied this long is completed by the sweeper")
    sandbox_enabled: bool = Field(default=False, description="serve the CRM sandbox page at /sandbox (demo only)")
    sandbox_tenant: str = Field(default="demo", description="the tenant the sandbox plays the CRM of")

    @field_validator("es_url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        hosts = [host.strip().rstrip("/") for host in value.split(",")]
        if not all(hosts):
            raise ValueError("RECMATCH_ES_URL has an empty host between commas")
        for host in hosts:
            if not host.startswith(("http://", "https://")):
                raise ValueError(f"RECMATCH_ES_URL: {host!r} must start with http:// or https://")
        if len({host.split("://")[0] for host in hosts}) > 1:
            raise ValueError("RECMATCH_ES_URL mixes http:// and https:// hosts")
        return ",".join(hosts)

    @property
    def es_hosts(self) -> list[str]:
        """The nodes named by RECMATCH_ES_URL, in order."""
        return self.es_url.split(",")

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"RECMATCH_WEBHOOK_ALLOWED_NETWORKS: {network!r} is not a CIDR like 10.0.0.0/8") from None
        return value

    @field_validator("secrets_key")
    @classmethod
    def _secrets_key_is_fernet(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from cryptography.fernet import Fernet

            for key in value.get_secret_value().split(","):
                try:
                    Fernet(key.strip())
                except ValueError:
                    raise ValueError("RECMATCH_SECRETS_KEY: each key must be 32 url-safe base64-encoded bytes "
                                     "(python -c 'from cryptography.fernet import Fernet; "
                                     "print(Fernet.generate_key().decode())')") from None
        return value

    @model_validator(mode="after")
    def _auth_is_whole(self) -> Settings:
        if (self.es_username is None) != (self.es_password is None):
            raise ValueError("set both RECMATCH_ES_USERNAME and RECMATCH_ES_PASSWORD, or neither")
        if self.es_retry_backoff_cap < self.es_retry_backoff_base:
            raise ValueError("RECMATCH_ES_RETRY_BACKOFF_CAP must be >= RECMATCH_ES_RETRY_BACKOFF_BASE")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
