"""URLs of the bench site."""
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import views

urlpatterns = [
    path("", views.index),
    path("schema/", SpectacularAPIView.as_view()),
]
