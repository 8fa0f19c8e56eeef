app_name = "ticketing"
urlpatterns: list = []
