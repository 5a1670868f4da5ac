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

// A link to a moment (?t=seconds, from a search hit) starts the player there; the
// queue's "select all" ticks every call on the page.
(function () {
  "use strict";
  var player = document.getElementById("player");
  if (player && player.hasAttribute("data-start")) {
    var start = parseFloat(player.getAttribute("data-start"));
    var jump = function () { if (!isNaN(start)) { player.currentTime = start; } };
    if (player.readyState >= 1) { jump(); } else { player.addEventListener("loadedmetadata", jump, {once: true}); }
    var turn = document.querySelector(".turn.at-seek");
    if (turn) { turn.scrollIntoView({block: "center"}); }
  }
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="call_id"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
})();
