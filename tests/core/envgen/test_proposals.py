"""Template proposals: one per tag, auth plumbing skipped, small related resources merged."""

from __future__ import annotations

from typing import Any

from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedParam, NormalizedSpec
from envfactory_dagster.lineage import canonical_json

CUSTOMER = {
    "type": "object",
    "x-ref-name": "Customer",
    "description": "A shopper.",
    "required": ["id", "name", "email"],
    "properties": {
        "id": {"type": "string", "readOnly": True},
        "name": {"type": "string", "maxLength": 80},
        "email": {"type": "string", "format": "email"},
        "city": {"type": "string"},
    },
}
ORDER = {
    "type": "object",
    "x-ref-name": "Order",
    "description": "An order placed by a customer.",
    "required": ["id", "customer_id", "total", "status", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "customer_id": {"type": "string", "x-foreign-key": "Customer"},
        "total": {"type": "number", "minimum": 0},
        "status": {"type": "string", "enum": ["pending", "paid", "shipped", "cancelled"]},
        "sku_code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
ORDER_CREATE = {
    "type": "object",
    "x-ref-name": "OrderCreate",
    "required": ["customer_id", "total"],
    "properties": {"customer_id": ORDER["properties"]["customer_id"], "total": ORDER["properties"]["total"]},
}


def op(operation_id: str, method: str, path: str, tag: str, **extra: Any) -> NormalizedOperation:
    params = [
        NormalizedParam(name=seg[1:-1], location="path", required=True, schema={"type": "string"})
        for seg in path.split("/")
        if seg.startswith("{")
    ]
    params += extra.pop("query", [])
    return NormalizedOperation(
        operation_id=operation_id,
        method=method,
        path=path,
        tags=[tag],
        parameters=params,
        summary=extra.pop("summary", operation_id),
        **extra,
    )


def listing(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": schema}}}


def shop_spec() -> NormalizedSpec:
    """A hand-built shop API: customers and orders (CRUD, search, a cancel transition) + OAuth."""
    status = NormalizedParam(
        name="status",
        location="query",
        schema={"type": "string", "enum": ORDER["properties"]["status"]["enum"]},
    )
    limit = NormalizedParam(name="limit", location="query", schema={"type": "integer"})
    q = NormalizedParam(name="q", location="query", required=True, schema={"type": "string"})
    return NormalizedSpec(
        kind="openapi3",
        title="Acme Shop API",
        description="A small web shop.",
        tags={
            "Orders": "Take, look up and cancel orders.",
            "Customers": "Keep the customer file.",
            "auth": "Tokens.",
        },
        operations=[
            op("createToken", "post", "/oauth/token", "auth"),
            op(
                "listOrders",
                "get",
                "/v1/orders",
                "Orders",
                query=[status, limit],
                response=listing(ORDER, "orders"),
            ),
            op(
                "searchOrders",
                "get",
                "/v1/orders/search",
                "Orders",
                query=[q],
                response=listing(ORDER, "orders"),
            ),
            op("getOrder", "get", "/v1/orders/{order_id}", "Orders", response=ORDER),
            op("createOrder", "post", "/v1/orders", "Orders", request_body=ORDER_CREATE, response=ORDER),
            op(
                "updateOrder",
                "patch",
                "/v1/orders/{order_id}",
                "Orders",
                request_body={**ORDER_CREATE, "required": [], "x-ref-name": "OrderUpdate"},
                response=ORDER,
            ),
            op("deleteOrder", "delete", "/v1/orders/{order_id}", "Orders"),
            op("cancelOrder", "post", "/v1/orders/{order_id}/cancel", "Orders", response=ORDER),
            op(
                "listCustomers",
                "get",
                "/v1/customers",
                "Customers",
                query=[limit],
                response=listing(CUSTOMER, "customers"),
            ),
            op("getCustomer", "get", "/v1/customers/{customer_id}", "Customers", response=CUSTOMER),
            op(
                "createCustomer",
                "post",
                "/v1/customers",
                "Customers",
                request_body={**CUSTOMER, "x-ref-name": "CustomerCreate"},
                response=CUSTOMER,
            ),
            op(
                "listCustomerOrders",
                "get",
                "/v1/customers/{customer_id}/orders",
                "Customers",
                response=listing(ORDER, "orders"),
            ),
        ],
        schemas={"Customer": CUSTOMER, "Order": ORDER},
    )


def hotel_specs() -> list[NormalizedSpec]:
    """Three tiny travel resources that share vocabulary (hotel ids, offers) and one unrelated."""
    hotel_ids = NormalizedParam(name="hotelIds", location="query", required=True, schema={"type": "string"})
    city = NormalizedParam(name="cityCode", location="query", required=True, schema={"type": "string"})
    hotel = {
        "type": "object",
        "x-ref-name": "Hotel",
        "properties": {
            "hotelId": {"type": "string"},
            "name": {"type": "string"},
            "cityCode": {"type": "string"},
        },
    }
    offer = {
        "type": "object",
        "x-ref-name": "HotelOffer",
        "properties": {
            "id": {"type": "string"},
            "hotelId": {"type": "string"},
            "cityCode": {"type": "string"},
            "price": {"type": "number"},
        },
    }
    booking = {
        "type": "object",
        "x-ref-name": "HotelBooking",
        "properties": {
            "id": {"type": "string"},
            "offerId": {"type": "string"},
            "hotelId": {"type": "string"},
        },
    }
    weather = {
        "type": "object",
        "x-ref-name": "Forecast",
        "properties": {"id": {"type": "string"}, "temperature": {"type": "number"}},
    }
    return [
        NormalizedSpec(
            kind="openapi3",
            title="Hotel List",
            hosts=["test.api.hotels.example"],
            operations=[
                op(
                    "listHotelsByCity",
                    "get",
                    "/reference-data/hotels/by-city",
                    "Hotels",
                    query=[city],
                    response=listing(hotel, "data"),
                )
            ],
        ),
        NormalizedSpec(
            kind="swagger2",
            title="Hotel Search",
            hosts=["test.api.hotels.example"],
            operations=[
                op(
                    "getHotelOffers",
                    "get",
                    "/shopping/hotel-offers",
                    "Shopping",
                    query=[hotel_ids],
                    response=listing(offer, "data"),
                )
            ],
        ),
        NormalizedSpec(
            kind="swagger2",
            title="Hotel Booking",
            hosts=["test.api.hotels.example"],
            operations=[
                op(
                    "createHotelBooking",
                    "post",
                    "/booking/hotel-bookings",
                    "Booking",
                    request_body={
                        "type": "object",
                        "properties": {"offerId": {"type": "string"}, "hotelId": {"type": "string"}},
                    },
                    response=booking,
                )
            ],
        ),
        NormalizedSpec(
            kind="openapi3",
            title="Weather",
            hosts=["api.weather.example"],
            operations=[op("getForecast", "get", "/forecast/{id}", "Forecast", response=weather)],
        ),
    ]


def resource_row(resource_id: str, domain: str, spec: NormalizedSpec) -> dict[str, Any]:
    return {
        "id": resource_id,
        "domain": domain,
        "kind": spec.kind,
        "title": spec.title,
        "source_path": f"{domain}/{resource_id}.yaml",
        "spec_json": canonical_json(spec.model_dump(mode="json", by_alias=True)),
    }


def test_one_proposal_per_tag_and_auth_operations_skipped() -> None:
    proposals, errors, metrics = propose_environments([resource_row("res_shop", "commerce", shop_spec())])
    assert errors == []
    assert [p["class_name"] for p in proposals] == ["AcmeOrders", "AcmeCustomers"]
    orders = proposals[0]
    assert orders["purpose"] == "Take, look up and cancel orders."
    assert orders["resource_ids"] == ["res_shop"]
    assert "res_shop:cancelOrder" in orders["operation_ids"] and len(orders["operation_ids"]) == 7
    assert orders["entities"][0] == "Order" and orders["backend"] == "template"
    assert orders["id"].startswith("prop_")
    assert metrics["skipped_auth_operation_ids"] == ["res_shop:createToken"]
    assert all("createToken" not in qid for p in proposals for qid in p["operation_ids"])


def test_small_resources_sharing_vocabulary_are_merged() -> None:
    rows = [resource_row(f"res_{i}", "travel", spec) for i, spec in enumerate(hotel_specs())]
    proposals, errors, _ = propose_environments(rows)
    assert errors == []
    merged = [p for p in proposals if len(p["resource_ids"]) > 1]
    assert len(merged) == 1 and merged[0]["resource_ids"] == ["res_0", "res_1", "res_2"]
    assert len(merged[0]["operation_ids"]) == 3
    assert any(p["resource_ids"] == ["res_3"] for p in proposals), "the unrelated resource stays alone"
    assert len({p["class_name"] for p in proposals}) == len(proposals)


def test_proposals_are_deterministic_and_bad_rows_become_errors() -> None:
    rows = [
        resource_row("res_shop", "commerce", shop_spec()),
        {"id": "res_bad", "domain": "commerce", "source_path": "x.yaml", "spec_json": "{not json"},
    ]
    first = propose_environments(rows)
    second = propose_environments(list(reversed(rows)))
    assert first[0] == second[0]
    assert len(first[1]) == 1 and "res_bad" in first[1][0]["reason"] and "x.yaml" in first[1][0]["reason"]


def test_documents_of_different_hosts_never_merge_however_alike() -> None:
    """Shared words (`hotel`, `offer`) do not make two vendors one service: a proposal spanning
    them would put both into one world."""
    specs = hotel_specs()
    specs[1] = specs[1].model_copy(update={"hosts": ["api.other-vendor.example"]})
    specs[2] = specs[2].model_copy(update={"hosts": []})
    rows = [resource_row(f"res_{i}", "travel", spec) for i, spec in enumerate(specs)]
    proposals, errors, _ = propose_environments(rows)
    assert errors == []
    assert all(len(p["resource_ids"]) == 1 for p in proposals)
    assert sorted(p["resource_ids"][0] for p in proposals) == ["res_0", "res_1", "res_2", "res_3"]
