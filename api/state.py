"""What one service process holds (`ServiceState`, on `app.state.service`)."""

from __future__ import annotations

from api import auth
from api.audit import AuditWriter
from api.database import ServiceDB, open_service_db
from api.settings import Settings
from api.week import WeekCache


class ServiceState:
    """What one service process holds: settings, the database, the audit writer, the week."""

    def __init__(self, settings: Settings, *, throttle: auth.ThrottlePolicy | None = None) -> None:
        self.settings = settings
        self.db: ServiceDB = open_service_db(settings.home)
        self.audit = AuditWriter(self.db)
        self.weeks = WeekCache(settings)
        self.throttle = throttle or auth.ThrottlePolicy()
        self.models_cache: dict = {}
