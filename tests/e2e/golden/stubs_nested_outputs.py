from typing import Any, Literal, NotRequired, Optional, TypedDict, Union

class LinePrice(TypedDict):
    amount_cents: int
    currency: Literal["EUR"]

class Line(TypedDict):
    sku: str
    qty: NotRequired[int]  # Units ordered. (default: 1)
    price: LinePrice

class Address(TypedDict):
    city: str
    country: str  # ISO 3166 code.

class Order(TypedDict):
    """One order.
    """
    id: int
    status: Literal["open", "shipped", "cancelled"]
    lines: list[Line]
    shipping: NotRequired[Optional[Address]]  # (default: None)
    note: NotRequired[str]  # Free text from the customer. (default: "")

class CategoryCountsValue(TypedDict):
    open: NotRequired[int]
    done: NotRequired[bool]

class Category(TypedDict):
    name: str
    children: list["Category"]
    counts: NotRequired[dict[str, CategoryCountsValue]]

# Response headers.
FetchHeadersResult = TypedDict("FetchHeadersResult", {
    "content-type": str,
    "x-request-id": NotRequired[Optional[str]],
})

async def list_orders(customer: str) -> list[Order]:
    """A customer's orders, newest first.
    """

async def category_tree(**kwargs: Any) -> Category:
    ...

# tool/call name: "fetch-headers"
async def fetch_headers(**kwargs: Any) -> FetchHeadersResult:
    """Returns: Response headers.
    """

async def raw_dump(**kwargs: Any) -> Any:
    """Whatever the backend returns.

    Returns: a value of undocumented shape (no output schema).
    """
