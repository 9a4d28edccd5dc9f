"""The flow page: the designer's canvas with the flow's status, versions, webhook and test runs around it."""

from app.pages.flow.page import ROUTE, flow_page
from app.pages.flow.state import DesignerState

__all__ = ["ROUTE", "DesignerState", "flow_page"]
