// Jump the call's audio player to a finding or a turn: buttons carry data-seek (seconds).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-seek]");
    if (!button) { return; }
    var player = document.getElementById("player");
    if (!player) { return; }
    var start = parseFloat(button.getAttribute("data-seek"));
    if (isNaN(start)) { return; }
    player.currentTime = start;
    var played = player.play();
    if (played && played.catch) { played.catch(function () { /* no audio output: the seek still counts */ }); }
    document.querySelectorAll("mark.playing").forEach(function (m) { m.classList.remove("playing"); });
    var finding = button.getAttribute("data-finding");
    if (finding) {
      document.querySelectorAll("mark[data-findings]").forEach(function (m) {
        if (m.getAttribute("data-findings").split(" ").indexOf(finding) >= 0) {
          m.classList.add("playing");
          m.scrollIntoView({block: "nearest"});
        }
      });
    }
  });
})();
