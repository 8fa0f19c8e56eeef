from django.apps import AppConfig


class TicketingConfig(AppConfig):
    name = "ticketing"
    verbose_name = "Ticketing"

    def ready(self) -> None:
        # Ticketing plugs into the apps below it; docs/architecture.md lists these hooks.
        from rooms import hooks as room_hooks

        from . import checks, selectors, services  # noqa: F401  (checks registers itself)

        room_hooks.entry_rule_register(
            room_hooks.EntryRule(
                name="ticket",
                lets_in=selectors.has_ticket_access,
                refusal="This is a ticketed Space. Buy a ticket to listen in.",
            )
        )
        room_hooks.space_page_context_register(selectors.ticket_box)
        room_hooks.space_admin_figures["n_tickets"] = selectors.tickets_sold_expression
        room_hooks.space_cancelled.connect(services.tickets_refund_on_cancel, dispatch_uid="ticketing-refund")
        room_hooks.space_audience_register(selectors.ticket_holder_ids)
        room_hooks.space_summary_figures.connect(selectors.summary_figures, dispatch_uid="ticketing-summary")
