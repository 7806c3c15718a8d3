"""The controller's AMI side: a sans-IO codec (`codec`) and the panoramisk link (`client`)."""
