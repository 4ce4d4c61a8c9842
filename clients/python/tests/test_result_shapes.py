"""Return annotations become ``output_schema``s, and the daemon shows them as TypedDict classes in
the stubs, so a model can write its filter code without first printing a result."""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass, field
from typing import Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import NotRequired, TypedDict  # NotRequired: Python 3.11+ in typing

import ptcd


class Address(TypedDict):
    city: str
    zip: NotRequired[str]


class Customer(TypedDict):
    """A customer record."""

    id: int
    tier: Literal["free", "pro"]
    address: Address


class Status(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class Shipment:
    """A parcel on its way."""

    tracking: str
    status: Status
    weight_kg: float = 1.0
    tags: list[str] = field(default_factory=list)


class LineItem(BaseModel):
    sku: str
    qty: int = Field(description="Units ordered.")


class Order(BaseModel):
    """An order with its lines."""

    id: int
    lines: list[LineItem]
    note: str | None = None


def get_customer(customer_id: int) -> Customer:
    """One customer."""
    return {"id": customer_id, "tier": "pro", "address": {"city": "Oslo"}}


def list_shipments() -> list[Shipment]:
    """Every shipment."""
    return [Shipment("T1", Status.OPEN)]


async def get_order(order_id: int) -> Order:
    """One order."""
    return Order(id=order_id, lines=[LineItem(sku="A", qty=2)])


@pytest.fixture
async def stubs(client: ptcd.AsyncClient) -> str:
    return str((await client.tool_definitions([get_customer, list_shipments, get_order]))["stubs"])


async def test_typed_dict_returns_become_nested_classes(stubs: str) -> None:
    assert "class Address(TypedDict):\n    city: str\n    zip: NotRequired[str]\n" in stubs
    assert 'class Customer(TypedDict):\n    """A customer record.\n    """\n    id: int\n' in stubs
    assert '    tier: Literal["free", "pro"]\n    address: Address\n' in stubs
    assert "async def get_customer(customer_id: int) -> Customer:" in stubs


async def test_dataclass_list_returns_show_enums_and_defaults(stubs: str) -> None:
    assert '    status: Literal["open", "closed"]\n' in stubs
    assert "    weight_kg: NotRequired[float]  # (default: 1.0)\n" in stubs
    assert "    tags: NotRequired[list[str]]\n" in stubs
    assert "async def list_shipments() -> list[Shipment]:" in stubs


async def test_pydantic_model_returns_resolve_their_defs(stubs: str) -> None:
    assert "class LineItem(TypedDict):\n    sku: str\n    qty: int  # Units ordered.\n" in stubs
    assert "    lines: list[LineItem]\n    note: NotRequired[Optional[str]]  # (default: None)\n" in stubs
    assert "async def get_order(order_id: int) -> Order:" in stubs


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the stubs import typing.NotRequired (Python 3.11+)")
async def test_the_stubs_are_valid_python_that_names_each_shape(stubs: str) -> None:
    namespace: dict[str, object] = {}
    exec(compile(stubs, "<stubs>", "exec", dont_inherit=True), namespace)
    assert {"Address", "Customer", "Shipment", "LineItem", "Order"} <= set(namespace)
