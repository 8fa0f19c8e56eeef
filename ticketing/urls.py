from django.urls import path

from . import views

app_name = "ticketing"
urlpatterns = [
    path("tickets/sell/", views.seller, name="seller"),
    path("tickets/earnings/", views.earnings, name="earnings"),
    path("tickets/payouts/connect/", views.payouts_connect, name="payouts_connect"),
    path("tickets/payouts/refresh/", views.payouts_refresh, name="payouts_refresh"),
    path("tickets/payouts/return/", views.payouts_return, name="payouts_return"),
    path("spaces/<int:space_id>/tickets/", views.ticket_settings, name="settings"),
    path("spaces/<int:space_id>/tickets/buy/", views.buy, name="buy"),
    path("spaces/<int:space_id>/tickets/done/", views.checkout_return, name="checkout_return"),
    path("spaces/<int:space_id>/tickets/cancelled/", views.checkout_cancel, name="checkout_cancel"),
    path("stripe/webhook/", views.stripe_webhook, name="webhook"),
    # Test mode only (no STRIPE_SECRET_KEY): stand-ins for Stripe's hosted pages.
    path("tickets/test-checkout/<str:session_id>/", views.local_checkout, name="local_checkout"),
    path("tickets/test-onboarding/<str:account_id>/", views.local_onboarding, name="local_onboarding"),
]
