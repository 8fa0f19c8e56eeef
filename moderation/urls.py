from django.urls import path

from . import views

app_name = "moderation"
urlpatterns = [
    path("spaces/<int:space_id>/report/", views.report_space, name="report_space"),
    path("spaces/<int:space_id>/feedback/", views.feedback, name="feedback"),
    path("u/<str:username>/report/", views.report_account, name="report_account"),
    path("u/<str:username>/block/", views.block, name="block"),
    path("u/<str:username>/unblock/", views.unblock, name="unblock"),
    path("settings/blocked/", views.blocks, name="blocks"),
    path("settings/reports/", views.my_reports, name="my_reports"),
]
