from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.shortcuts import render


class AccountAdapter(DefaultAccountAdapter):
    """Links in allauth's emails point at SITE_URL, so they work behind a proxy too; a suspended
    person who signs in is told why and how to appeal."""

    def respond_user_inactive(self, request, user):
        if not getattr(user, "is_suspended", False):
            return super().respond_user_inactive(request, user)
        context = {"suspended": user, "appeals_email": settings.SPACES_APPEALS_EMAIL}
        return render(request, "accounts/suspended.html", context, status=403)

    def get_email_confirmation_url(self, request, emailconfirmation):
        url = super().get_email_confirmation_url(request, emailconfirmation)
        return self._absolute(url)

    def _absolute(self, url: str) -> str:
        if url.startswith("http://") or url.startswith("https://"):
            return url
        return settings.SITE_URL + url
