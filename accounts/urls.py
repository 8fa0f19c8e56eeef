from django.urls import path

from . import views

urlpatterns = [
    path("settings/profile/", views.profile_edit, name="profile_edit"),
    path("u/<str:username>/", views.profile, name="profile"),
    path("u/<str:username>/follow/", views.follow, name="follow"),
    path("u/<str:username>/unfollow/", views.unfollow, name="unfollow"),
    path("u/<str:username>/live-email/", views.live_email, name="live_email"),
    path("u/<str:username>/followers/", views.followers, name="followers"),
    path("u/<str:username>/following/", views.following, name="following"),
]
