"""Every model module is imported here so that ``Base.metadata`` is complete for Alembic."""

from .base import Base, NAMING_CONVENTION  # noqa: F401
from .core import Account, Checkpoint, Entry, Transfer  # noqa: F401
from .people import Merchant, OrgUnit, RoleGrant, User  # noqa: F401
from .redemption import (  # noqa: F401
    Card,
    CatalogueItem,
    IdempotencyRecord,
    Redemption,
    Refund,
    Settlement,
    SpentCode,
    Till,
)
from .earning import Award, Claim  # noqa: F401
from .web import WebSession  # noqa: F401
from .security import RateCounter, SecurityEvent  # noqa: F401
