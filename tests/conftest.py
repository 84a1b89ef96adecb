import pytest


@pytest.fixture
def tmall(db):
    from siyu.commerce.models import ChannelKind
    from siyu.org.models import StoreKind
    from tests.factories import make_brand, make_channel, make_store

    store = make_store("tmall-flagship", brand=make_brand(), kind=StoreKind.MARKETPLACE, city="")
    return make_channel("tmall", kind=ChannelKind.MARKETPLACE, store=store)


@pytest.fixture
def pos(db):
    from tests.factories import make_channel, make_store

    return make_channel("pos-sh-01", store=make_store("sh-01"))
