import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

TABS = [
    ("mail:index", "mail", "Messages", "Messaggi"),
    ("contacts:index", "contacts", "Contacts", "Contatti"),
    ("agenda:index", "agenda", "Calendar", "Calendario"),
    ("todos:index", "todos", "Tasks", "Attività"),
    ("search:index", "search", "Search", "Cerca"),
    ("options:index", "options", "Options", "Opzioni"),
]


@pytest.mark.parametrize("url_name", [tab[0] for tab in TABS])
def test_it_sends_an_anonymous_visitor_of_every_tab_to_login(client, url_name):
    url = reverse(url_name)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next={url}"


def test_it_sends_the_root_to_the_messages_tab(alice_client):
    response = alice_client.get("/")
    assert response.status_code == 302 and response.url == reverse("mail:index")


@pytest.mark.parametrize(("url_name", "tab", "english", "_italian"), TABS)
def test_it_shows_six_tabs_and_marks_the_current_one(alice_client, url_name, tab, english, _italian):
    response = alice_client.get(reverse(url_name))
    assert response.status_code == 200
    body = response.content.decode()
    for other_name, _tab, _english, _it in TABS:
        assert f'href="{reverse(other_name)}"' in body
    nav = body.split('<nav class="tabs"', 1)[1].split("</nav>", 1)[0]
    assert nav.count('aria-current="page"') == 1
    assert f'href="{reverse(url_name)}" aria-current="page">{english}</a>' in nav


def test_it_has_a_skip_link_and_a_global_search_box(alice_client):
    body = alice_client.get(reverse("account_change_password")).content.decode()
    assert '<a class="skip-link" href="#main">' in body
    assert '<main id="main" tabindex="-1">' in body
    assert f'action="{reverse("search:index")}"' in body
    assert 'method="get"' in body and 'name="q"' in body
    assert '<label for="global-search-q"' in body


def test_it_switches_the_page_to_italian(alice_client):
    response = alice_client.post(
        reverse("set_language"), {"language": "it", "next": reverse("account_change_password")}
    )
    assert response.status_code == 302
    body = alice_client.get(reverse("account_change_password")).content.decode()
    assert '<html lang="it">' in body
    for _name, _tab, _english, italian in TABS:
        assert f">{italian}</a>" in body
    assert "Salta al contenuto" in body
    assert "Esci" in body
    assert ">Cambia</button>" in body


def test_it_honours_the_browsers_language(alice_client):
    body = alice_client.get(
        reverse("account_change_password"), headers={"accept-language": "it-IT,it;q=0.9"}
    ).content.decode()
    assert '<html lang="it">' in body
    assert ">Contatti</a>" in body
    body = alice_client.get(
        reverse("account_change_password"), headers={"accept-language": "de-DE,en;q=0.5"}
    ).content.decode()
    assert '<html lang="en">' in body


def test_it_shows_the_login_page_in_italian(client, db):
    body = client.get(reverse("account_login"), headers={"accept-language": "it"}).content.decode()
    assert "Accedi" in body
    assert "non esiste una registrazione pubblica" in body


def test_it_renders_the_account_pages_in_the_shell(alice_client):
    for url_name in ("account_change_password", "usersessions_list"):
        response = alice_client.get(reverse(url_name))
        assert response.status_code == 200
        body = response.content.decode()
        assert 'class="tabs"' in body and 'class="subnav"' in body
