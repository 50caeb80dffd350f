/* "Use my location": a small progressive enhancement of the search form. Where the browser
   can locate itself, the button appears; a press asks for the location (the browser asks
   the person first), rounds it to about a kilometre, and submits the search with
   near=latitude,longitude: results nearest first, each with its distance. Without this
   script (or without permission) the form works as before: type a town or suburb. Nothing
   is sent anywhere but this site's own /search. */
(function () {
  "use strict";
  if (!("geolocation" in navigator)) {
    return;
  }
  var buttons = document.querySelectorAll("[data-near-me]");
  Array.prototype.forEach.call(buttons, function (button) {
    var form = button.form || button.closest("form");
    if (!form) {
      return;
    }
    var status = form.querySelector("[data-near-me-status]");
    var say = function (words) {
      if (status) {
        status.textContent = words;
      }
    };
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      say("Finding your location…");
      navigator.geolocation.getCurrentPosition(
        function (position) {
          var near = form.querySelector("input[name=near]");
          if (!near) {
            near = document.createElement("input");
            near.type = "hidden";
            near.name = "near";
            form.appendChild(near);
          }
          near.value =
            position.coords.latitude.toFixed(2) + "," + position.coords.longitude.toFixed(2);
          var where = form.querySelector("input[name=where]");
          if (where) {
            where.value = "";  /* your location is the place */
          }
          say("Searching near your location…");
          form.submit();
        },
        function () {
          button.disabled = false;
          say("Your location is not available: type a town, city or suburb instead.");
        },
        { enableHighAccuracy: false, timeout: 10000, maximumAge: 600000 }
      );
    });
  });
})();
